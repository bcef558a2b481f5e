/** Spark ML wrapper: the instruction tokenizer as a persistable {@code Transformer}. */
package io.loraspark.prep.ml;
