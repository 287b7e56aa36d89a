"""The application layer: the command line, the demo, plots and terminal reports."""
