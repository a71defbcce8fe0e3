"""TAKD (Mirzadeh et al., AAAI 2020, "Improved Knowledge Distillation via Teacher Assistant"): Hinton KD from the
teacher to a mid-sized assistant, then from the assistant to the student. The student's step is
`akd_tf.methods.hinton.HintonKD`'s; the run pipeline trains (or loads) the assistant first."""

from akd_tf.methods import registry
from akd_tf.methods.hinton import HintonMethod


class _TeacherAssistant(HintonMethod):
    name, title, short = "takd", "TAKD", "TAKD"
    help = "Hinton KD through a teacher assistant (--assistant, or --assistant_net trained here by Hinton KD)"
    via_assistant = True
    assistant_method = HintonMethod.name
    images_only = True
    settings = ("assistant_path",)


registry.register(_TeacherAssistant())
