// placeholder: filled by the BackpackResults work
