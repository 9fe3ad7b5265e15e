// The JobStore implementation shared by both backends, `include!`d after
// `shared.rs` (whose helpers it uses). Claiming a task is one UPDATE of the
// row a sub-select picks: on PostgreSQL the sub-select locks the row with
// `FOR UPDATE SKIP LOCKED`, so concurrent claimers on several nodes take
// different tasks; SQLite has one writer connection, so claims are
// serialised anyway.

const EXECUTION_COLUMNS: &str = "id, vendor_type, vendor_id, status, trigger_kind, extra_attrs, stop_requested, start_time, end_time, update_time";

const TASK_COLUMNS: &str = "id, execution_id, vendor_type, status, status_message, run_count, extra_attrs, worker, heartbeat, progress_done, progress_total, creation_time, start_time, update_time, end_time";

#[derive(sqlx::FromRow)]
struct ExecutionRow {
    id: i64,
    vendor_type: String,
    vendor_id: i64,
    status: String,
    trigger_kind: String,
    extra_attrs: String,
    stop_requested: bool,
    start_time: i64,
    end_time: Option<i64>,
    update_time: i64,
}

fn job_status(s: &str) -> CoreResult<JobStatus> {
    JobStatus::parse(s).ok_or_else(|| CoreError::Internal(format!("corrupt job status in metadata store: {s:?}")))
}

impl ExecutionRow {
    fn into_execution(self) -> CoreResult<Execution> {
        Ok(Execution {
            id: self.id,
            vendor_type: self.vendor_type,
            vendor_id: self.vendor_id,
            status: job_status(&self.status)?,
            trigger: self.trigger_kind,
            extra_attrs: self.extra_attrs,
            stop_requested: self.stop_requested,
            start_time: self.start_time,
            end_time: self.end_time,
            update_time: self.update_time,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    id: i64,
    execution_id: i64,
    vendor_type: String,
    status: String,
    status_message: String,
    run_count: i64,
    extra_attrs: String,
    worker: Option<String>,
    heartbeat: Option<i64>,
    progress_done: i64,
    progress_total: i64,
    creation_time: i64,
    start_time: Option<i64>,
    update_time: i64,
    end_time: Option<i64>,
}

impl TaskRow {
    fn into_task(self) -> CoreResult<Task> {
        Ok(Task {
            id: self.id,
            execution_id: self.execution_id,
            vendor_type: self.vendor_type,
            status: job_status(&self.status)?,
            status_message: self.status_message,
            run_count: self.run_count,
            extra_attrs: self.extra_attrs,
            worker: self.worker,
            heartbeat: self.heartbeat,
            progress_done: self.progress_done,
            progress_total: self.progress_total,
            creation_time: self.creation_time,
            start_time: self.start_time,
            update_time: self.update_time,
            end_time: self.end_time,
        })
    }
}

/// Ends `execution_id` when none of its tasks is open any more, with the
/// status its tasks add up to.
async fn settle_execution(conn: &mut sqlx::pool::PoolConnection<Db>, execution_id: i64, now: Millis) -> CoreResult<()> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT status, COUNT(*) FROM tasks WHERE execution_id = $1 GROUP BY status")
        .bind(execution_id)
        .fetch_all(&mut **conn)
        .await
        .map_err(db)?;
    let count = |s: JobStatus| rows.iter().find(|(st, _)| st == s.as_str()).map(|r| r.1).unwrap_or(0);
    if count(JobStatus::Pending) + count(JobStatus::Running) > 0 {
        return Ok(());
    }
    let status = if count(JobStatus::Error) > 0 {
        JobStatus::Error
    } else if count(JobStatus::Stopped) > 0 {
        JobStatus::Stopped
    } else {
        JobStatus::Success
    };
    sqlx::query("UPDATE executions SET status = $1, end_time = $2, update_time = $2 WHERE id = $3 AND end_time IS NULL")
        .bind(status.as_str())
        .bind(now)
        .bind(execution_id)
        .execute(&mut **conn)
        .await
        .map_err(db)?;
    Ok(())
}

#[async_trait]
impl berth_core::ports::JobStore for Store {
    async fn create_execution(&self, new: &NewExecution, now: Millis) -> CoreResult<Execution> {
        let mut conn = self.durable().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        // An execution without tasks has nothing to wait for.
        let status = if new.tasks.is_empty() { JobStatus::Success } else { JobStatus::Pending };
        let end_time = new.tasks.is_empty().then_some(now);
        let row: ExecutionRow = sqlx::query_as(&format!(
            "INSERT INTO executions (vendor_type, vendor_id, status, trigger_kind, extra_attrs, start_time, end_time, update_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $6) RETURNING {EXECUTION_COLUMNS}"
        ))
        .bind(&new.vendor_type)
        .bind(new.vendor_id)
        .bind(status.as_str())
        .bind(&new.trigger)
        .bind(&new.extra_attrs)
        .bind(now)
        .bind(end_time)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        for attrs in &new.tasks {
            sqlx::query(
                "INSERT INTO tasks (execution_id, vendor_type, status, extra_attrs, creation_time, update_time)
                 VALUES ($1, $2, 'Pending', $3, $4, $4)",
            )
            .bind(row.id)
            .bind(&new.vendor_type)
            .bind(attrs)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        row.into_execution()
    }

    async fn execution(&self, id: i64) -> CoreResult<Option<Execution>> {
        let row: Option<ExecutionRow> = sqlx::query_as(&format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .map_err(db)?;
        row.map(ExecutionRow::into_execution).transpose()
    }

    async fn list_executions(&self, vendor_type: &str, vendor_id: Option<i64>, page: Page) -> CoreResult<(Vec<Execution>, i64)> {
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM executions WHERE vendor_type = ");
        count.push_bind(vendor_type.to_owned());
        let mut list = QueryBuilder::<Db>::new(format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE vendor_type = "));
        list.push_bind(vendor_type.to_owned());
        if let Some(v) = vendor_id {
            count.push(" AND vendor_id = ").push_bind(v);
            list.push(" AND vendor_id = ").push_bind(v);
        }
        list.push(" ORDER BY id DESC LIMIT ")
            .push_bind(page.size as i64)
            .push(" OFFSET ")
            .push_bind(page.offset() as i64);
        let total: i64 = count.build_query_scalar().fetch_one(self.reader()).await.map_err(db)?;
        let rows: Vec<ExecutionRow> = list.build_query_as().fetch_all(self.reader()).await.map_err(db)?;
        let items = rows.into_iter().map(ExecutionRow::into_execution).collect::<CoreResult<_>>()?;
        Ok((items, total))
    }

    async fn tasks(&self, execution_id: i64) -> CoreResult<Vec<Task>> {
        let rows: Vec<TaskRow> = sqlx::query_as(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE execution_id = $1 ORDER BY id"))
            .bind(execution_id)
            .fetch_all(self.reader())
            .await
            .map_err(db)?;
        rows.into_iter().map(TaskRow::into_task).collect()
    }

    async fn task(&self, id: i64) -> CoreResult<Option<Task>> {
        let row: Option<TaskRow> = sqlx::query_as(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .map_err(db)?;
        row.map(TaskRow::into_task).transpose()
    }

    async fn claim_task(&self, vendor_types: &[&str], worker: &str, now: Millis, stale_before: Millis) -> CoreResult<Option<Task>> {
        if vendor_types.is_empty() {
            return Ok(None);
        }
        let mut conn = self.writer().acquire().await.map_err(db)?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        let mut qb = QueryBuilder::<Db>::new("UPDATE tasks SET status = 'Running', worker = ");
        qb.push_bind(worker.to_owned())
            .push(", heartbeat = ")
            .push_bind(now)
            .push(", update_time = ")
            .push_bind(now)
            .push(", run_count = run_count + 1, start_time = COALESCE(start_time, ")
            .push_bind(now)
            .push(") WHERE id = (SELECT id FROM tasks WHERE (status = 'Pending' OR (status = 'Running' AND heartbeat < ")
            .push_bind(stale_before)
            .push(")) AND vendor_type IN (");
        let mut sep = qb.separated(", ");
        for v in vendor_types {
            sep.push_bind(v.to_string());
        }
        qb.push(format!(") ORDER BY id LIMIT 1{SKIP_LOCKED}) RETURNING {TASK_COLUMNS}"));
        let row: Option<TaskRow> = qb.build_query_as().fetch_optional(&mut *tx).await.map_err(db)?;
        let Some(row) = row else {
            tx.commit().await.map_err(db)?;
            return Ok(None);
        };
        sqlx::query("UPDATE executions SET status = 'Running', update_time = $1 WHERE id = $2 AND status = 'Pending'")
            .bind(now)
            .bind(row.execution_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.into_task().map(Some)
    }

    async fn heartbeat_task(&self, id: i64, worker: &str, now: Millis, done: i64, total: i64) -> CoreResult<Heartbeat> {
        let stop: Option<bool> = sqlx::query_scalar(
            "UPDATE tasks SET heartbeat = $1, update_time = $1, progress_done = $2, progress_total = $3
             WHERE id = $4 AND worker = $5 AND status = 'Running'
             RETURNING (SELECT stop_requested FROM executions WHERE executions.id = tasks.execution_id)",
        )
        .bind(now)
        .bind(done)
        .bind(total)
        .bind(id)
        .bind(worker)
        .fetch_optional(self.writer())
        .await
        .map_err(db)?;
        Ok(match stop {
            None => Heartbeat::Lost,
            Some(true) => Heartbeat::Stop,
            Some(false) => Heartbeat::Continue,
        })
    }

    async fn finish_task(&self, id: i64, worker: &str, status: JobStatus, message: &str, now: Millis) -> CoreResult<bool> {
        if !status.is_final() {
            return Err(CoreError::Internal(format!("a task cannot finish as {}", status.as_str())));
        }
        let mut conn = self.durable().await?;
        let execution: Option<i64> = sqlx::query_scalar(
            "UPDATE tasks SET status = $1, status_message = $2, end_time = $3, update_time = $3, heartbeat = NULL
             WHERE id = $4 AND worker = $5 AND status = 'Running' RETURNING execution_id",
        )
        .bind(status.as_str())
        .bind(message)
        .bind(now)
        .bind(id)
        .bind(worker)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        let Some(execution) = execution else {
            return Ok(false);
        };
        settle_execution(&mut conn, execution, now).await?;
        Ok(true)
    }

    async fn stop_execution(&self, id: i64, now: Millis) -> CoreResult<bool> {
        let mut conn = self.durable().await?;
        let open: Option<i64> = sqlx::query_scalar(
            "UPDATE executions SET stop_requested = TRUE, update_time = $1 WHERE id = $2 AND end_time IS NULL RETURNING id",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        if open.is_none() {
            return Ok(false);
        }
        sqlx::query("UPDATE tasks SET status = 'Stopped', end_time = $1, update_time = $1 WHERE execution_id = $2 AND status = 'Pending'")
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        settle_execution(&mut conn, id, now).await?;
        Ok(true)
    }

    async fn append_task_log(&self, id: i64, now: Millis, lines: &[String]) -> CoreResult<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut qb = QueryBuilder::<Db>::new("INSERT INTO task_logs (task_id, time, line) ");
        qb.push_values(lines, |mut b, line| {
            b.push_bind(id).push_bind(now).push_bind(line.clone());
        });
        qb.build().execute(self.writer()).await.map_err(db)?;
        Ok(())
    }

    async fn task_log(&self, id: i64) -> CoreResult<Vec<(Millis, String)>> {
        sqlx::query_as("SELECT time, line FROM task_logs WHERE task_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(self.reader())
            .await
            .map_err(db)
    }

    async fn schedule(&self, vendor_type: &str, vendor_id: i64) -> CoreResult<Option<Schedule>> {
        self.schedule_impl(vendor_type, vendor_id).await
    }
    async fn put_schedule(&self, schedule: &Schedule) -> CoreResult<Schedule> {
        self.put_schedule_impl(schedule).await
    }
    async fn delete_schedule(&self, vendor_type: &str, vendor_id: i64) -> CoreResult<bool> {
        self.delete_schedule_impl(vendor_type, vendor_id).await
    }
    async fn due_schedules(&self, now: Millis) -> CoreResult<Vec<Schedule>> {
        self.due_schedules_impl(now).await
    }
    async fn advance_schedule(&self, id: i64, from: Millis, to: Millis) -> CoreResult<bool> {
        self.advance_schedule_impl(id, from, to).await
    }
}

const SCHEDULE_COLUMNS: &str = "id, vendor_type, vendor_id, kind, cron, params, next_run, creation_time, update_time";

type ScheduleRow = (i64, String, i64, String, String, String, i64, i64, i64);

fn schedule_from(r: ScheduleRow) -> Schedule {
    Schedule {
        id: r.0,
        vendor_type: r.1,
        vendor_id: r.2,
        kind: r.3,
        cron: r.4,
        params: r.5,
        next_run: r.6,
        creation_time: r.7,
        update_time: r.8,
    }
}

impl Store {
    async fn schedule_impl(&self, vendor_type: &str, vendor_id: i64) -> CoreResult<Option<Schedule>> {
        let row: Option<ScheduleRow> = sqlx::query_as(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE vendor_type = $1 AND vendor_id = $2"
        ))
        .bind(vendor_type)
        .bind(vendor_id)
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        Ok(row.map(schedule_from))
    }

    async fn put_schedule_impl(&self, s: &Schedule) -> CoreResult<Schedule> {
        let row: ScheduleRow = sqlx::query_as(&format!(
            "INSERT INTO schedules (vendor_type, vendor_id, kind, cron, params, next_run, creation_time, update_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (vendor_type, vendor_id) DO UPDATE SET kind = excluded.kind, cron = excluded.cron,
               params = excluded.params, next_run = excluded.next_run, update_time = excluded.update_time
             RETURNING {SCHEDULE_COLUMNS}"
        ))
        .bind(&s.vendor_type)
        .bind(s.vendor_id)
        .bind(&s.kind)
        .bind(&s.cron)
        .bind(&s.params)
        .bind(s.next_run)
        .bind(s.update_time)
        .fetch_one(&mut *self.durable().await?)
        .await
        .map_err(db)?;
        Ok(schedule_from(row))
    }

    async fn delete_schedule_impl(&self, vendor_type: &str, vendor_id: i64) -> CoreResult<bool> {
        let r = sqlx::query("DELETE FROM schedules WHERE vendor_type = $1 AND vendor_id = $2")
            .bind(vendor_type)
            .bind(vendor_id)
            .execute(&mut *self.durable().await?)
            .await
            .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    async fn due_schedules_impl(&self, now: Millis) -> CoreResult<Vec<Schedule>> {
        let rows: Vec<ScheduleRow> = sqlx::query_as(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE next_run <= $1 ORDER BY next_run, id"
        ))
        .bind(now)
        .fetch_all(self.reader())
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(schedule_from).collect())
    }

    async fn advance_schedule_impl(&self, id: i64, from: Millis, to: Millis) -> CoreResult<bool> {
        let r = sqlx::query("UPDATE schedules SET next_run = $1 WHERE id = $2 AND next_run = $3")
            .bind(to)
            .bind(id)
            .bind(from)
            .execute(&mut *self.durable().await?)
            .await
            .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }
}
