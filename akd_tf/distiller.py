"""Where the distillers lived before `akd_tf.methods`: kept so that earlier imports and saved files keep working."""

from akd_tf.batch_keys import STUDENT_INPUTS, TEACHER_INPUTS, TEACHER_LOGITS  # noqa: F401
from akd_tf.methods.annealing import AnnealingKD  # noqa: F401
from akd_tf.methods.base import Distiller, check_compatible, known_shape, split_inputs  # noqa: F401
from akd_tf.methods.hinton import HintonKD  # noqa: F401
