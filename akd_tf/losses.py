"""Distillation losses as per-example tensors (``keras.ops``), so a caller can reduce them over the
*global* batch under a distribution strategy.

Each function returns a vector of shape ``[batch]``; the mean over the batch is the paper's loss.
"""

from keras import ops


def annealing_loss(student_logits, teacher_logits, phi):
    """Phase 1 of Annealing-KD (Jafari et al., 2021, Eq. 3)::

        L(x) = mean_c (z_s(x)_c − Φ(T) · z_t(x)_c)²

    ``phi`` is the annealing factor ``Φ(T) = 1 − (T − 1)/τ_max``. The student's logits are not scaled,
    there is no label term and no KL: at ``Φ = 1`` this is plain MSE against the raw teacher logits.
    """
    teacher_logits = ops.cast(teacher_logits, student_logits.dtype)
    phi = ops.cast(phi, student_logits.dtype)
    return ops.mean(ops.square(student_logits - phi * teacher_logits), axis=-1)


def continuation_loss(labels, student_logits, teacher_logits, phi, psi, margin=0.0, labelled_loss=None):
    """Continuation-KD (Jafari et al., 2022, arXiv 2212.05998), one loss for the whole run::

        L(x) = ψ · CE(y, z_s(x)) + (1 − ψ) · max{0, ‖z_s(x) − Φ(T) · z_t(x)‖² − m · Φ(T)}

    ``‖·‖²`` is taken as Annealing-KD's phase-1 loss, the squared distance averaged over the classes (the official
    Annealing-KD code's ``mse_loss``), not summed: the paper states that Annealing-KD is the case m = 0 with ψ a 0/1
    step, which holds only if both terms are the same quantity (a sum would weigh the teacher 10x more against the
    cross-entropy on CIFAR-10). The hinge ignores an example whose logits lie within ``m · Φ(T)`` (in that mean
    squared distance) of the annealed teacher's; ``m = 0`` is `annealing_loss` itself. ``labelled_loss``: the label
    term per example in place of CE (e.g. `regression_loss`, the squared error of a single output, for STS-B).
    """
    teacher_logits = ops.cast(teacher_logits, student_logits.dtype)
    phi = ops.cast(phi, student_logits.dtype)
    psi = ops.cast(psi, student_logits.dtype)
    hinge = ops.maximum(annealing_loss(student_logits, teacher_logits, phi)
                        - ops.cast(margin, student_logits.dtype) * phi, 0.0)
    labelled = (labelled_loss or label_loss)(labels, student_logits)
    return psi * labelled + (1.0 - psi) * hinge


def label_loss(labels, student_logits):
    """Phase 2 of Annealing-KD and the plain baseline: cross-entropy on the hard labels, from logits."""
    return ops.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)


def regression_loss(targets, student_outputs):
    """Phase 2 of Annealing-KD on a regression task (STS-B): squared error of the single output."""
    targets = ops.reshape(ops.cast(targets, student_outputs.dtype), (-1, 1))
    return ops.mean(ops.square(student_outputs - targets), axis=-1)


def hinton_kd_loss(labels, student_logits, teacher_logits, temperature, student_loss_weight, labelled_loss=None):
    """Hinton et al. (2015) knowledge distillation, as used by the KD and TAKD baselines, with w the
    ``student_loss_weight`` (the label term's weight, as `keras.distillation.Distiller` names it)::

        L(x) = w · CE(y, z_s) + (1 − w) · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T))

    ``labelled_loss``: the label term per example in place of CE.
    The ``T²`` factor keeps the soft term's gradient scale independent of ``T``.
    """
    teacher_logits = ops.cast(teacher_logits, student_logits.dtype)
    soft_teacher = ops.softmax(teacher_logits / temperature, axis=-1)
    log_soft_teacher = ops.log_softmax(teacher_logits / temperature, axis=-1)
    log_soft_student = ops.log_softmax(student_logits / temperature, axis=-1)
    kl = ops.sum(soft_teacher * (log_soft_teacher - log_soft_student), axis=-1)
    return (student_loss_weight * (labelled_loss or label_loss)(labels, student_logits)
            + (1.0 - student_loss_weight) * temperature**2 * kl)
