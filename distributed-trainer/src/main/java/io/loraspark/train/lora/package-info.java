/**
 * LoRA adapters on the frozen base (Hu et al. 2021, arXiv:2106.09685): weights, the fused
 * multi-adapter branch, and the Hugging Face PEFT on-disk format.
 */
package io.loraspark.train.lora;
