// Plain ES5 and XMLHttpRequest: the in-app browsers of WeCom and DingTalk are not always recent.
// The position comes from the app the page runs in (WeCom: wx.getLocation after wx.config;
// DingTalk: dd.device.geolocation.get, after dd.config when the page got one), else from the
// browser's Geolocation API.
(function(){
  var btn=document.getElementById('go'), out=document.getElementById('result');
  if(!btn) return;
  var apis={};
  try{apis=JSON.parse(btn.getAttribute('data-apis')||'{}')||{}}catch(e){apis={}}
  var wxState='none';
  if(apis.wecom&&window.wx&&wx.config){
    wxState='pending';
    wx.config({beta:true,debug:false,appId:apis.wecom.appId,timestamp:apis.wecom.timestamp,
      nonceStr:apis.wecom.nonceStr,signature:apis.wecom.signature,jsApiList:['getLocation']});
    wx.ready(function(){wxState='ready'});
    wx.error(function(){wxState='failed'});
  }
  var ddState='none';
  if(apis.dingtalk&&apis.dingtalk.signature&&window.dd&&dd.config){
    ddState='pending';
    dd.config({agentId:apis.dingtalk.agentId,corpId:apis.dingtalk.corpId,timeStamp:apis.dingtalk.timeStamp,
      nonceStr:apis.dingtalk.nonceStr,signature:apis.dingtalk.signature,type:0,jsApiList:['device.geolocation.get']});
    dd.ready(function(){ddState='ready'});
    dd.error(function(){ddState='failed'});
  }
  function show(state,text){out.className=state;out.setAttribute('data-state',state);out.textContent=text}
  function nonce(){var s='';for(var i=0;i<4;i++){s+=Math.floor(Math.random()*4294967296).toString(16)}return s}
  function post(lat,lng,accuracy,system,via){
    var body={lat:lat,lng:lng,accuracy_m:(accuracy===undefined||accuracy===null||accuracy==='')?null:Number(accuracy),
      coord_system:system,via:via,device_at:new Date().toISOString(),nonce:nonce()};
    var x=new XMLHttpRequest();x.open('POST',location.pathname+location.search,true);
    x.setRequestHeader('Content-Type','application/json');
    x.onload=function(){
      var r={};try{r=JSON.parse(x.responseText)}catch(e){}
      if(x.status>=200&&x.status<300){show(r.verdict||'done',r.message||'已打卡');out.setAttribute('data-state','done');out.setAttribute('data-verdict',r.verdict||'');out.setAttribute('data-via',via)}
      else{show('error',r.message||('打卡失败（'+x.status+'）'));btn.disabled=false}
    };
    x.onerror=function(){show('error','网络错误，请稍后重试');btn.disabled=false};
    x.send(JSON.stringify(body));
  }
  function browser(){
    if(!navigator.geolocation){show('error','此浏览器不能定位，请在聊天中发送位置打卡。');btn.disabled=false;return}
    navigator.geolocation.getCurrentPosition(function(p){
      post(p.coords.latitude,p.coords.longitude,p.coords.accuracy,'wgs84','browser');
    },function(e){
      var why=e.code===1?'没有定位权限，请允许本页面使用位置信息，或在聊天中发送位置。':'定位失败：'+e.message;
      show('error',why);btn.disabled=false;
    },{enableHighAccuracy:true,timeout:20000,maximumAge:0});
  }
  function wecom(){
    wx.getLocation({type:'wgs84',
      success:function(r){post(r.latitude,r.longitude,r.accuracy,'wgs84','wecom')},
      fail:function(){browser()}, cancel:function(){show('error','您取消了定位，未打卡。');btn.disabled=false}});
  }
  function dingtalk(){
    dd.device.geolocation.get({targetAccuracy:200,coordinate:1,withReGeocode:false,useCache:false,
      onSuccess:function(r){post(r.latitude,r.longitude,r.accuracy,'gcj02','dingtalk')},
      onFail:function(){browser()}});
  }
  function locate(waited){
    if((wxState==='pending'||ddState==='pending')&&waited<15){setTimeout(function(){locate(waited+1)},200);return}
    if(wxState==='ready'){wecom()}
    else if(apis.dingtalk&&ddState!=='failed'&&window.dd&&dd.device&&dd.device.geolocation){dingtalk()}
    else{browser()}
  }
  btn.addEventListener('click',function(){
    btn.disabled=true;show('locating','正在定位……');locate(0);
  });
})();
