package io.loraspark.prep.read;

import java.io.Serializable;

/**
 * One data file of the input.
 *
 * @param index position in the sorted file list; with the row number it defines input order
 * @param uri the fully qualified Hadoop path
 * @param name the path relative to the input root (the file name for a single-file input), used in
 *     {@code source} columns
 * @param format the resolved format, never {@link FileFormat#AUTO}
 * @param length size in bytes
 */
public record InputFile(int index, String uri, String name, FileFormat format, long length)
    implements Serializable {}
