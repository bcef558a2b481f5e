/** The preprocess Spark job: read, map, dedupe, tokenize and mask, split, pack, write. */
package io.loraspark.prep.job;
