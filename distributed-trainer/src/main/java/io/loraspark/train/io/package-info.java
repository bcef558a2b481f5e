/**
 * Atomic file writes and directory clean-up shared by the adapter, checkpoint and model writers.
 */
package io.loraspark.train.io;
