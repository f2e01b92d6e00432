"""Developer scripts beside the package that the installed ``isac bench`` does not need.

The benchmark suite itself, its timing utilities and the dense references it measures
against are installed with the package as `isacblocks.bench` (``isac bench``).  What stays
here runs from a source checkout only:

* ``training_profile.py`` -- where a training step's time goes, part by part, on one thread
  (``python -m benchmarks.training_profile``): a profiler for working on `Trainer.step()`;
* ``gpu_training.py`` -- the training step and a paper-scale SL curve on a CUDA device
  (``python -m benchmarks.gpu_training``), run by ``device_check.sh``;
* ``device_check.sh`` -- the one-shot check of the CUDA path on a GPU machine.
"""
