/**
 * The run report: a sweep run directory read back and rendered as {@code report.html} and {@code
 * report.md}.
 */
package io.loraspark.pipeline.report;
