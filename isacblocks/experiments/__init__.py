"""The paper's studies and the command lines users run."""
