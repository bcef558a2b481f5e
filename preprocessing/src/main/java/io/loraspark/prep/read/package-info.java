/**
 * Input files (JSONL, JSON arrays, Parquet, CSV) read into numbered raw records, never failing on a
 * row.
 */
package io.loraspark.prep.read;
