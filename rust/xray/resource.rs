//! What the resource says about the service X-Ray's rules are matched for:
//! its name, its platform (for `ServiceType`) and its ARN, from a `Resource`
//! (the Python layer reads it) or from the OpenTelemetry environment.

/// What the resource says about this service, for `ServiceName`, `ServiceType` and `ResourceARN`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceFacts {
    pub service_name: String,
    /// `cloud.platform` (`aws_ec2`, `aws_lambda`, ...).
    pub cloud_platform: Option<String>,
    pub ecs_container_arn: Option<String>,
    /// `cloud.resource_id`, else `faas.id`.
    pub resource_id: Option<String>,
}

impl ResourceFacts {
    /// What the OpenTelemetry environment says (`OTEL_SERVICE_NAME`, else
    /// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else `unknown_service`,
    /// as the SDK reads them; the other attributes from `OTEL_RESOURCE_ATTRIBUTES`).
    pub fn from_environment() -> ResourceFacts {
        let listed = std::env::var("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default();
        let attribute = |key: &str| {
            listed.split(',').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k.trim() == key).then(|| percent_encoding::percent_decode_str(v.trim()).decode_utf8_lossy().into_owned())
            })
        };
        let service_name = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| attribute("service.name"))
            .unwrap_or_else(|| "unknown_service".to_owned());
        ResourceFacts {
            service_name,
            cloud_platform: attribute("cloud.platform"),
            ecs_container_arn: attribute("aws.ecs.container.arn"),
            resource_id: attribute("cloud.resource_id").or_else(|| attribute("faas.id")),
        }
    }

    /// X-Ray's `ServiceType` for the platform ("" when it names none).
    pub fn service_type(&self) -> &str {
        match self.cloud_platform.as_deref() {
            Some("aws_lambda") => "AWS::Lambda::Function",
            Some("aws_elastic_beanstalk") => "AWS::ElasticBeanstalk::Environment",
            Some("aws_ec2") => "AWS::EC2::Instance",
            Some("aws_ecs") => "AWS::ECS::Container",
            Some("aws_eks") => "AWS::EKS::Container",
            _ => "",
        }
    }

    /// The resource ARN when the resource alone gives it; None when the span's
    /// attributes must be read (a Lambda function whose resource has no id).
    pub fn arn(&self) -> Option<&str> {
        if let Some(arn) = &self.ecs_container_arn {
            return Some(arn);
        }
        if self.cloud_platform.as_deref() == Some("aws_lambda") {
            return self.resource_id.as_deref();
        }
        Some("")
    }
}
