// placeholder: filled by the BackpackEvaluation work
