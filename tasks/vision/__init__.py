"""Vision plugins: patch and conv-stem tokenizers, image-folder and TFDS datasets, augmentation, flip views,
and the attention maps that `tlbkit-viz` draws (`attention_maps`)."""

from tlbkit_tasks.vision.conv_stem_tokenizer import ConvStemTokenizer  # noqa: F401
from tlbkit_tasks.vision.flip_views import FlipViews  # noqa: F401
from tlbkit_tasks.vision.image_folder import image_folder  # noqa: F401
from tlbkit_tasks.vision.patch_tokenizer import PatchTokenizer  # noqa: F401
from tlbkit_tasks.vision.random_shift import RandomShift  # noqa: F401
from tlbkit_tasks.vision.tfds_images import tfds_images  # noqa: F401
