"""Text plugins: byte and vocabulary tokenizers; IMDB (TFDS or folder) and generated ListOps datasets."""

from tasks.text.byte_tokenizer import ByteTokenizer  # noqa: F401
from tasks.text.imdb import imdb_folder, imdb_reviews  # noqa: F401
from tasks.text.listops import listops  # noqa: F401
from tasks.text.vocabulary_tokenizer import VocabularyTokenizer  # noqa: F401
