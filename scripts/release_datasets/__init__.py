"""The per-dataset rules of scripts/release_data.py, one module per benchmark (mmbench, oodcv,
scienceqa, seedbench, ai2d) plus common.py for what they share; CONVERTERS maps the dataset name
given on the command line to its converter, convert(args, rng, stats) -> [Row], which reads the
raw files, applies the release's rules with rng's draws in the release's order and counts what it
drops or pads in stats. release_data.py imports this package from its own folder (sys.path)."""
from .ai2d import convert_ai2d
from .mmbench import convert_mmbench
from .oodcv import convert_oodcv
from .scienceqa import convert_scienceqa
from .seedbench import convert_seedbench

CONVERTERS = {"mmbench": convert_mmbench, "oodcv": convert_oodcv, "scienceqa": convert_scienceqa,
              "seedbench": convert_seedbench, "ai2d": convert_ai2d}
