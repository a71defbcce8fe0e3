"""How the studies' tables, verdicts and plots name the methods (`akd_tf.config.METHODS`): short in table headers
and gap columns, long where a row names its method; and which methods a CIFAR-10 study compares, in its tables'
order."""

CIFAR_STUDY = ("scratch", "kd", "takd", "akd", "ckd")

SHORT = {"scratch": "scratch", "finetune": "fine-tune", "kd": "KD", "takd": "TAKD", "akd": "AKD", "ckd": "CKD"}
LONG = {"scratch": "scratch (labels only)", "finetune": "fine-tune", "kd": "Hinton KD", "takd": "TAKD",
        "akd": "Annealing-KD", "ckd": "Continuation-KD"}
