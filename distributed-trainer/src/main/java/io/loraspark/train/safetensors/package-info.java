/** Reading and writing Hugging Face safetensors files and sharded checkpoints (F32, F16, BF16). */
package io.loraspark.train.safetensors;
