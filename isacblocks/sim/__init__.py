"""Monte Carlo simulation built on `isacblocks.dsp`: the projected-frame shortcut
(`montecarlo`) and the seeded evaluation of an assumed spacing as executor tasks
(`evaluation`).  `dsp` never imports this package."""
