// placeholder: filled by the BackpackCheckpoint work
