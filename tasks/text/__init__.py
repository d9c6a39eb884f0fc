"""Text plugins: byte (plain or down-sampled) and vocabulary tokenizers; IMDB (TFDS or folder) and generated ListOps datasets."""

from tlbkit_tasks.text.byte_conv_tokenizer import ByteConvTokenizer  # noqa: F401
from tlbkit_tasks.text.byte_tokenizer import ByteTokenizer  # noqa: F401
from tlbkit_tasks.text.imdb import imdb_folder, imdb_reviews  # noqa: F401
from tlbkit_tasks.text.listops import listops  # noqa: F401
from tlbkit_tasks.text.vocabulary_tokenizer import VocabularyTokenizer  # noqa: F401
