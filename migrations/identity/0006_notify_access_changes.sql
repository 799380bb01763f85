-- Gateways cache memberships' roles, allow-lists and verified API keys and
-- drop an entry when PostgreSQL says it changed: every change notifies
-- channel `cg_access` at commit through the platform's one notifier,
-- `tenancy.notify_access_change` (tenancy migrates first), so a role
-- change, an allow-list or a revoked key holds on the next call through
-- every gateway replica.
CREATE TRIGGER notify_access_change AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION tenancy.notify_access_change('organization_id', 'user_id');
CREATE TRIGGER notify_access_change AFTER INSERT OR UPDATE OR DELETE ON security_settings
    FOR EACH ROW EXECUTE FUNCTION tenancy.notify_access_change('organization_id');
CREATE TRIGGER notify_access_change AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION tenancy.notify_access_change('organization_id');
CREATE TRIGGER notify_access_change AFTER INSERT OR UPDATE OR DELETE ON operator_api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy.notify_access_change();
