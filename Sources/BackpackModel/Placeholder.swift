// placeholder: filled by the BackpackModel work
