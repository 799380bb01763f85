-- Gateways cache what admits a call (an organization with its status, tier
-- and features; its verified domains) and drop an entry when PostgreSQL
-- says it changed. Every change to these tables, by any writer, notifies
-- channel `cg_access` at commit with `<schema>.<table>[:<key>...]`, the key
-- columns named by the trigger's arguments, so every replica hears of it
-- before the writer's caller can make its next call.
CREATE FUNCTION notify_access_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
    payload text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
    key_column text;
BEGIN
    FOREACH key_column IN ARRAY coalesce(TG_ARGV, '{}') LOOP
        payload := payload || ':' || coalesce(changed ->> key_column, '');
    END LOOP;
    PERFORM pg_notify('cg_access', payload);
    RETURN NULL;
END $$;

CREATE TRIGGER notify_access_change AFTER INSERT OR UPDATE OR DELETE ON organizations
    FOR EACH ROW EXECUTE FUNCTION notify_access_change('id');
CREATE TRIGGER notify_access_change AFTER INSERT OR UPDATE OR DELETE ON feature_overrides
    FOR EACH ROW EXECUTE FUNCTION notify_access_change('organization_id');
CREATE TRIGGER notify_access_change AFTER INSERT OR UPDATE OR DELETE ON organization_domains
    FOR EACH ROW EXECUTE FUNCTION notify_access_change('organization_id');
-- A tier's features change every organization on it.
CREATE TRIGGER notify_access_change AFTER INSERT OR UPDATE OR DELETE ON tier_features
    FOR EACH STATEMENT EXECUTE FUNCTION notify_access_change();
CREATE TRIGGER notify_access_change AFTER INSERT OR UPDATE OR DELETE ON tiers
    FOR EACH STATEMENT EXECUTE FUNCTION notify_access_change();
