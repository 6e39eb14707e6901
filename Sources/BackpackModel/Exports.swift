// BackpackConfig and ModelError belong to the model-folder contract (BackpackModelFolder), below
// the tokenizer; a model's users keep getting them with `import BackpackModel`, as before the split.
@_exported import BackpackModelFolder
