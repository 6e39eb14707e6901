// placeholder: filled by the BackpackEditing work
