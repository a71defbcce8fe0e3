"""How the studies' tables, verdicts and plots name the methods (`akd_tf.config.METHODS`): short in table headers
and gap columns, long where a row names its method."""

SHORT = {"scratch": "scratch", "finetune": "fine-tune", "kd": "KD", "takd": "TAKD", "akd": "AKD", "ckd": "CKD"}
LONG = {"scratch": "scratch (labels only)", "finetune": "fine-tune", "kd": "Hinton KD", "takd": "TAKD",
        "akd": "Annealing-KD", "ckd": "Continuation-KD"}
