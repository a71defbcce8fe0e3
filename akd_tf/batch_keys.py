"""The layout of a distillation batch's inputs: who gets what. Written by the data pipelines (cached teacher logits,
separate teacher inputs) and read by the distillers (`akd_tf.methods.base.split_inputs`)::

    {STUDENT_INPUTS: x_s}                              both models take x_s
    {STUDENT_INPUTS: x_s, TEACHER_INPUTS: x_t}         e.g. text models with different tokenizers
    {STUDENT_INPUTS: x_s, TEACHER_LOGITS: z_t}         the teacher's logits computed once, ahead of time
"""

STUDENT_INPUTS = "student_inputs"
TEACHER_INPUTS = "teacher_inputs"
TEACHER_LOGITS = "teacher_logits"
INPUT_KEYS = (STUDENT_INPUTS, TEACHER_INPUTS, TEACHER_LOGITS)
