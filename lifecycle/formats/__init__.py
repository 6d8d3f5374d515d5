"""Reading and writing the files lifecycle exchanges with operators and other tools."""
