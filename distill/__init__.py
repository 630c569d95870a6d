"""The data world, training, distillation, evaluation and export of Bind-Your-Avatar Live."""
