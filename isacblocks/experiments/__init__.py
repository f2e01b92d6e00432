"""The paper's studies and their results: the baseline sweeps, the learning studies of Figs. 3-5,
SNR, multi-target and impairment studies, and their JSON, tables, figures and claims.  The
command lines that run them are `isacblocks.commands`."""
