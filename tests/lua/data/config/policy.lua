-- a policy used by good.yaml
return { filter = function() return true end }
