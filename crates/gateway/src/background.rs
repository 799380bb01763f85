//! Tasks that run as long as the gateway does (health watchers, the
//! access-change listener): aborted when the gateway is dropped.

use std::future::Future;

use tokio::task::JoinHandle;

#[derive(Debug, Default)]
pub struct BackgroundTasks(Vec<JoinHandle<()>>);

impl BackgroundTasks {
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.0.push(tokio::spawn(task));
    }
}

impl Drop for BackgroundTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
