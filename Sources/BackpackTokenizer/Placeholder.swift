// placeholder: filled by the BackpackTokenizer work
