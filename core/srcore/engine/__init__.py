"""Training engine: one loop that every method configures through steps, none forks."""
