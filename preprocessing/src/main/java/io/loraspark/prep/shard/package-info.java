/** The Parquet shard schema (declared once), packing, split keys, manifest and atomic output. */
package io.loraspark.prep.shard;
