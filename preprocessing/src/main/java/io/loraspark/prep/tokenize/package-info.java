/** Hugging Face tokenizers (via DJL's native bindings) plus their models' special-token rules. */
package io.loraspark.prep.tokenize;
