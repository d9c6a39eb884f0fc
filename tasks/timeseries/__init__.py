"""Time-series plugins: per-step and patch tokenizers; UCR/UEA `.ts` datasets (files or by name)."""

from tlbkit_tasks.timeseries.conv_tokenizer import SeriesConvTokenizer  # noqa: F401
from tlbkit_tasks.timeseries.linear_tokenizer import SeriesLinearTokenizer  # noqa: F401
from tlbkit_tasks.timeseries.patch_tokenizer import SeriesPatchTokenizer  # noqa: F401
from tlbkit_tasks.timeseries.ts_format import TSData, TSFormatError, parse_ts  # noqa: F401
from tlbkit_tasks.timeseries.ucr import ts_files, ucr  # noqa: F401
