"""Time-series plugins: per-step, patch and convolutional tokenizers; UCR/UEA sets by name or file (`.ts`, `.tsv`,
`.arff`, `.csv`, `.npz`); `TLBClassifier`, the recipe as a scikit-learn-style estimator."""

from tlbkit_tasks.timeseries.conv_tokenizer import SeriesConvTokenizer  # noqa: F401
from tlbkit_tasks.timeseries.linear_tokenizer import SeriesLinearTokenizer  # noqa: F401
from tlbkit_tasks.timeseries.noise_views import SeriesNoiseViews  # noqa: F401
from tlbkit_tasks.timeseries.patch_tokenizer import SeriesPatchTokenizer  # noqa: F401
from tlbkit_tasks.timeseries.ts_format import TSData, TSFormatError, parse_ts  # noqa: F401
from tlbkit_tasks.timeseries.ucr import ts_files, ucr  # noqa: F401
from tlbkit_tasks.timeseries.classifier import TLBClassifier  # noqa: F401
