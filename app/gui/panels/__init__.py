"""The main window's parts, one module per group box: each builds its widgets and shows state;
the window (app/gui/main_window.py) wires them to the controller."""
