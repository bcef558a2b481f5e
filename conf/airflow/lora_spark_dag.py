"""Airflow DAG: a lora-spark sweep once a day, through spark-submit.

Copy this file into your DAGs folder and set the paths below. Each run writes to its own
run-date directory, so a retry (or a manual re-run of the same date) continues the same run
instead of starting another: lora-spark resumes finished rounds and adapter checkpoints.
The task fails (non-zero exit) when the pipeline fails; a run with at least one trained
adapter succeeds. `bin/lora-pipeline run --config ... --print-spark-submit` prints the same
command line for a manual check.
"""

from datetime import datetime

from airflow import DAG
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

LORA_SPARK_HOME = "/opt/lora-spark"  # a checkout built with ./mvnw package
RUNS = "/data/lora-spark/runs"  # a path every executor can read and write

with DAG(
    dag_id="lora_spark_sweep",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2},
    tags=["lora-spark"],
) as dag:
    SparkSubmitOperator(
        task_id="lora_spark_run",
        conn_id="spark_default",
        application=f"{LORA_SPARK_HOME}/pipeline/target/lora-spark-pipeline-0.1.0-SNAPSHOT-spark.jar",
        java_class="io.loraspark.pipeline.cli.Main",
        conf={
            "spark.executorEnv.OMP_NUM_THREADS": "1",
            "spark.task.cpus": "1",
            "spark.task.maxFailures": "4",
        },
        application_args=[
            "run",
            "--config",
            f"{LORA_SPARK_HOME}/conf/sweep-example.yaml",
            "--run-id",
            "{{ run_id }}",
            "--run-date",
            "{{ ds }}",
            "--output",
            RUNS + "/{{ ds }}",
            "--quiet",
        ],
    )
