"""A pass-through Keras layer that counts its calls: put in a teacher, it shows whether a training step ran it."""

import keras


class CallCounter(keras.layers.Layer):
    def build(self, input_shape):
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")

    def call(self, x):
        self.calls.assign_add(1.0)
        return x
