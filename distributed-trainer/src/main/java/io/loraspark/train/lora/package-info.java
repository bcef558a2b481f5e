/**
 * LoRA adapters on the frozen base (Hu et al. 2021, arXiv:2106.09685) and their family as {@link
 * io.loraspark.train.lora.LoraVariant} strategies (LoRA-FA, DoRA, PiSSA): weights, the fused
 * multi-adapter branch, merging, and the Hugging Face PEFT on-disk format.
 */
package io.loraspark.train.lora;
