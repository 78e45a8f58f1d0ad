"""What edit_file is made of, one concern a module; the tool itself, its schema and its flow, is
coder/tools/edit_file.py. Nothing here splits a whole file into lines or compares without a budget:
the file may be 40 MB and old_string may be ten thousand identical lines."""
