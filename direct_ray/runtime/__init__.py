"""Ray actors and remote tasks of a trial: pool state, selection, annotators, training."""
