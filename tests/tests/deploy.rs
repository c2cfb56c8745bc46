//! The deployment files: the Kubernetes manifests are valid API objects (strictly, against the
//! schemas PyPI's kubernetes-validate ships), the configuration their ConfigMap holds is one the
//! service accepts, and the pod is given longer to stop than the service takes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use plant_monitor::config::{Config, Source};
use plant_monitor_tests::repo;

#[test]
fn the_kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let output = Command::new(repo().join("scripts/validate-kubernetes"))
        .output()
        .expect("scripts/validate-kubernetes runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The block of `key: |` in a YAML file, dedented: the file the ConfigMap mounts.
fn literal_block(yaml: &str, key: &str) -> String {
    let mut lines = yaml
        .lines()
        .skip_while(|line| line.trim() != format!("{key}: |"));
    lines.next().expect("the key is in the file");
    let block: Vec<&str> = lines
        .take_while(|line| line.is_empty() || line.starts_with("    "))
        .collect();
    block
        .iter()
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_configmap_holds_a_configuration_the_service_accepts_and_stops_within_the_pods_grace() {
    let dir = repo().join("deploy/kubernetes");
    let configmap = std::fs::read_to_string(dir.join("configmap.yaml")).unwrap();
    let text = literal_block(&configmap, "plant-monitor.toml");
    let path = Path::new("deploy/kubernetes/configmap.yaml#plant-monitor.toml");
    let mut config = Config::from_toml(&text, path).unwrap_or_else(|error| panic!("{error}"));
    // As in the pod: the database URL comes from the Secret through the environment.
    config.database.url = "postgres://plant-monitor@db/plant_monitor".parse().unwrap();
    config
        .validate(&Source::File(path.to_path_buf()))
        .unwrap_or_else(|error| panic!("{error}"));

    let deployment = std::fs::read_to_string(dir.join("deployment.yaml")).unwrap();
    let grace: u64 = deployment
        .lines()
        .find_map(|line| line.trim().strip_prefix("terminationGracePeriodSeconds:"))
        .expect("the deployment sets terminationGracePeriodSeconds")
        .trim()
        .parse()
        .unwrap();
    assert!(
        config.server.shutdown_grace + Duration::from_secs(5) <= Duration::from_secs(grace),
        "shutdown_grace {:?} leaves the pod's {grace} s too little room to release its leases",
        config.server.shutdown_grace
    );
}

#[test]
fn the_pods_are_scraped_on_the_port_and_path_the_service_serves_metrics_on() {
    let dir = repo().join("deploy/kubernetes");
    let deployment = std::fs::read_to_string(dir.join("deployment.yaml")).unwrap();
    let value = |key: &str| {
        deployment
            .lines()
            .find_map(|line| line.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("the deployment sets {key}"))
            .trim()
            .trim_matches('"')
            .to_owned()
    };
    assert_eq!(value("prometheus.io/scrape:"), "true");
    assert_eq!(value("prometheus.io/path:"), "/metrics");
    let port = value("prometheus.io/port:");
    assert!(
        deployment.contains(&format!("containerPort: {port}}}")),
        "the scrape port {port} is the container's"
    );
    let configmap = std::fs::read_to_string(dir.join("configmap.yaml")).unwrap();
    let text = literal_block(&configmap, "plant-monitor.toml");
    let config = Config::from_toml(&text, Path::new("configmap.yaml")).unwrap();
    assert_eq!(config.server.listen.port().to_string(), port);
}
