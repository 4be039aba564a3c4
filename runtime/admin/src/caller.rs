//! Who is calling the admin API: the operator (the node's token) or a tenant
//! (a tenant's token). A tenant sees and changes only its own modules; what it
//! may not see answers 404, as if it did not exist.

use crate::{ApiError, ControlPlane};
use anthill_actors::module::{DeployError, ModuleInfo};
use axum::http::StatusCode;

/// The authenticated caller, put in each request's extensions by the token
/// check.
#[derive(Clone)]
pub(crate) enum Caller {
    Operator,
    /// A tenant, by name.
    Tenant(String),
}

impl Caller {
    /// Whether the caller may see and change `module`.
    pub(crate) fn owns(&self, module: &ModuleInfo) -> bool {
        match self {
            Caller::Operator => true,
            Caller::Tenant(t) => *t == module.tenant,
        }
    }

    /// The deployed module `name`, if the caller may see it.
    pub(crate) fn module(
        &self,
        control: &dyn ControlPlane,
        name: &str,
    ) -> Result<ModuleInfo, ApiError> {
        control
            .module(name)
            .filter(|m| self.owns(m))
            .ok_or_else(|| DeployError::NotFound(name.to_owned()).into())
    }

    /// Refuses a tenant a route that is the operator's alone.
    pub(crate) fn require_operator(&self) -> Result<(), ApiError> {
        match self {
            Caller::Operator => Ok(()),
            Caller::Tenant(t) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this route needs the operator's token; tenant `{}` may use /v1/modules, /v1/actors and /v1/tenant",
                    t
                ),
            )),
        }
    }

    /// The tenant a deploy by this caller goes into: a tenant's own, or the
    /// operator's choice.
    pub(crate) fn tenant_for_deploy(&self, asked: Option<String>) -> Option<String> {
        match self {
            Caller::Operator => asked,
            Caller::Tenant(t) => Some(t.clone()),
        }
    }
}
