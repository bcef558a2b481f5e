/** The {@code lora-pipeline} command line: argument parsing, exit codes, stdout/stderr contract. */
package io.loraspark.pipeline.cli;
